// Whole files written so that a reader never sees half of one: the bytes go to a
// temporary name in the same folder ("<path>.tmp-<pid>"), then a rename puts them in place
// (a rename within a folder is atomic). Every text or binary output that is not HDF5
// (HDF5 files have h5::Writer's own temporary file) is written this way. The temporary
// file's bytes reach the disk (fsync) before the rename, and the rename before the call
// returns (fsync of the folder): after a power loss the path holds the old file or the
// new one, never an empty one.
#pragma once

#include <string>

namespace ipg {

// Throws FileError (engine/hdf5.h) naming `path` when it cannot be written; the temporary
// file is removed then.
void write_file_atomically(const std::string& path, const std::string& bytes);

// A copy of `from` put in place at `to` the same way; FileError naming the file that could
// not be read or written, and why.
void copy_file_atomically(const std::string& from, const std::string& to);

// The last step of the above, for writers with their own temporary file (HDF5's): tmp's
// bytes to disk (fsync), the rename, then the folder's entry to disk (best effort: some
// file systems refuse a folder's fsync). FileError naming the file when the flush or the
// rename fails; tmp is removed then.
void rename_durably(const std::string& tmp, const std::string& path);

}  // namespace ipg
