// Moved to engine/sha256.h (engine/hdf5 seals files with it). This forwarding header
// keeps tools/ipguard building until its include is updated; then delete it.
#pragma once

#include "engine/sha256.h"
