// Whole files written so that a reader never sees half of one: the bytes go to a
// temporary name in the same folder ("<path>.tmp-<pid>"), then a rename puts them in place
// (a rename within a folder is atomic). Every text or binary output that is not HDF5
// (HDF5 files have h5::Writer's own temporary file) is written this way.
#pragma once

#include <string>

namespace ipg {

// Throws FileError (engine/hdf5.h) naming `path` when it cannot be written; the temporary
// file is removed then.
void write_file_atomically(const std::string& path, const std::string& bytes);

// A copy of `from` put in place at `to` the same way; FileError naming the file that could
// not be read or written, and why.
void copy_file_atomically(const std::string& from, const std::string& to);

}  // namespace ipg
