// What build of ipguard this is, for records that must say what made them (experiment
// results): the version of the project and the git commit of the source tree it was built
// from, read at every build (tools/ipguard/build_info.cmake).
#pragma once

namespace ipg::cli {

// e.g. "f77d9ef1c2a3" or "f77d9ef1c2a3-dirty" (uncommitted changes); "" when the tree was
// not a git checkout or git was missing.
const char* build_commit();

}  // namespace ipg::cli
