// HDF5 wrapper, names: listing a group's links and an object's attributes, each name
// bounded and checked for control bytes before it reaches a path or a message.
#include <hdf5.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/hdf5.h"
#include "engine/hdf5_internal.h"

namespace ipg::h5::detail {

namespace {

// Link and attribute names: bounded and free of control bytes (they end up in paths and
// messages). `name` comes from libhdf5, decoded from the file.
bool acceptable_name(const char* name, std::string* out, std::string* why) {
  const size_t len = strnlen(name, kMaxNameLength + 1);
  if (len > kMaxNameLength) {
    *why = "a name longer than " + std::to_string(kMaxNameLength) + " bytes ('" +
           printable(std::string(name, 40), 40) + "...')";
    return false;
  }
  out->assign(name, len);
  for (unsigned char c : *out)
    if (c < 0x20 || c == 0x7f) {
      *why = "a name with control bytes ('" + printable(*out) + "')";
      return false;
    }
  return true;
}

struct NameList {
  std::vector<std::string> names;
  std::string why;  // set when a name was refused
};

#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#else
using LinkInfo = H5L_info_t;
#endif

herr_t collect_link(hid_t, const char* name, const LinkInfo*, void* data) {
  auto* list = static_cast<NameList*>(data);
  std::string s;
  if (!acceptable_name(name, &s, &list->why)) return -1;
  if (list->names.size() >= kMaxLinksPerGroup) {
    list->why = "more than " + std::to_string(kMaxLinksPerGroup) + " links";
    return -1;
  }
  list->names.push_back(std::move(s));
  return 0;
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  auto* list = static_cast<NameList*>(data);
  std::string s;
  if (!acceptable_name(name, &s, &list->why)) return -1;
  if (list->names.size() >= static_cast<size_t>(kMaxAttributeElements)) {
    list->why = "too many attributes";
    return -1;
  }
  list->names.push_back(std::move(s));
  return 0;
}

}  // namespace

// H5Literate rather than H5Lget_name_by_idx: libhdf5 1.10 reads past a heap buffer in
// H5Lget_name_by_idx on some corrupt link tables (found under ASan), and iteration hands
// us each decoded name once, which we copy with a bound.
std::vector<std::string> link_names(hid_t group, const std::string& where) {
  quiet();
  NameList list;
#if H5_VERSION_GE(1, 12, 0)
  const herr_t rc = H5Literate2(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &list);
#else
  const herr_t rc = H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &list);
#endif
  if (!list.why.empty()) fail(where, "cannot list group: " + list.why);
  if (rc < 0) fail_h5(where, "cannot list group");
  return list.names;
}

std::vector<std::string> attribute_names(hid_t obj, const std::string& where) {
  quiet();
  NameList list;
  const herr_t rc = H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr, &list);
  if (!list.why.empty()) fail(where, "cannot list attributes: " + list.why);
  if (rc < 0) fail_h5(where, "cannot list attributes");
  return list.names;
}

}  // namespace ipg::h5::detail
