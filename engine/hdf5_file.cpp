// HDF5 wrapper, files: File opens one read-only (integrity header checked first);
// FileWriter writes one under a temporary name that commit() seals and renames into place.
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "engine/atomic_file.h"
#include "engine/hdf5.h"
#include "engine/hdf5_internal.h"

namespace ipg::h5 {

using namespace detail;

namespace {

// Tells a missing file, a non-HDF5 file and a damaged one apart. The integrity header
// is checked first, so that libhdf5 never parses a sealed file whose bytes changed.
Handle open_read_only(const std::string& path, ByteSeal* seal) {
  quiet();
  const std::string where = path + ": ";  // the file itself, not an object in it
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(where, "no such file");
  if (std::filesystem::is_directory(status)) fail(where, "is a directory, not an HDF5 file");
  *seal = check_byte_seal(path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) fail(where, "not an HDF5 file");
  if (is_hdf5 < 0) fail_h5(where, "cannot read file");
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where,
                 "cannot open HDF5 file (truncated or corrupt)");
}

Handle create_temp(const std::string& path, const std::string& temp, bool user_block) {
  quiet();
  const std::string where = path + ": /: ";
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), where, "cannot create property list");
  // Closing the file then closes every group and dataset still open in it, so commit()
  // renames a complete file even if the caller still holds handles.
  check(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_STRONG), where, "cannot set close degree");
  Handle fcpl = checked(H5Pcreate(H5P_FILE_CREATE), where, "cannot create property list");
  // Room for the integrity header, which sealing writes once the file is complete.
  if (user_block)
    check(H5Pset_userblock(fcpl.id(), static_cast<hsize_t>(kIntegrityHeaderSize)), where,
          "cannot reserve the integrity header");
  return checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), where,
                 "cannot create " + temp);
}

Handle open_root(const Handle& file, const std::string& path) {
  return checked(H5Gopen2(file.id(), "/", H5P_DEFAULT), path + ": /: ", "cannot open root");
}

// The file identifier itself is released at once: the root group keeps the file open,
// and every group or dataset opened from it keeps it open too, however long they live.
std::pair<Handle, ByteSeal> open_root_read_only(const std::string& path) {
  ByteSeal seal = ByteSeal::None;
  const Handle file = open_read_only(path, &seal);
  return {open_root(file, path), seal};
}

}  // namespace

File::File(const std::string& path) : File(path, open_root_read_only(path)) {}

File::File(const std::string& path, std::pair<Handle, ByteSeal> opened)
    : Group(std::move(opened.first), path, "/"), seal_(opened.second) {}

FileWriter::FileWriter(const std::string& path, Sealing sealing)
    : Group(Handle(), path, "/"),
      temp_path_(path + ".tmp-" + std::to_string(getpid())),
      temp_guard_(temp_path_),
      sealing_(sealing) {
  file_id_ = create_temp(path, temp_path_, sealing == Sealing::Sealed);
  try {
    handle_ = open_root(file_id_, path);
  } catch (...) {
    close_file();
    std::remove(temp_path_.c_str());
    throw;
  }
}

FileWriter::~FileWriter() {
  if (done_) return;
  close_file();
  std::remove(temp_path_.c_str());
}

bool FileWriter::close_file() {
  handle_.reset();
  if (!file_id_.valid()) return true;
  quiet();
  return H5Fclose(static_cast<hid_t>(file_id_.release())) >= 0;
}

void FileWriter::commit() {
  if (done_) fail(where(), "already committed");
  done_ = true;
  if (!close_file()) {
    std::remove(temp_path_.c_str());
    fail_h5(where(), "cannot finish writing " + temp_path_);
  }
  if (sealing_ == Sealing::Sealed) {
    try {
      seal_file(temp_path_, file_);
    } catch (...) {
      std::remove(temp_path_.c_str());
      throw;
    }
  }
  rename_durably(temp_path_, file_);  // on disk first: never an empty file after a crash
}

}  // namespace ipg::h5
