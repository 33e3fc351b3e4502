// --data NAME[:PATH] -> the loader for that format.
#include "models/data/dataset.h"

namespace ipg {

Dataset load_dataset(const std::string& spec, Split split) {
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const std::string path = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto need_path = [&]() {
    if (path.empty())
      throw DataError("--data " + spec + ": give the " + (name == "h5" ? "file" : "folder") +
                      " as " + name + (name == "h5" ? ":FILE" : ":DIR"));
    return path;
  };
  if (name == "fashion-mnist")
    return load_mnist_format(path.empty() ? kFashionMnistDir : path, split, name);
  if (name == "mnist") return load_mnist_format(need_path(), split, name);
  if (name == "cifar10") return load_cifar(need_path(), split, 10);
  if (name == "cifar100") return load_cifar(need_path(), split, 100);
  if (name == "h5") return load_h5_arrays(need_path(), split);
  throw DataError("--data " + spec +
                  ": unknown dataset (fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, "
                  "h5:FILE)");
}

std::vector<std::string> dataset_files(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const std::string path = colon == std::string::npos ? "" : spec.substr(colon + 1);
  std::vector<std::string> files;
  for (Split split : {Split::Train, Split::Test}) {
    std::vector<std::string> more;
    if (name == "fashion-mnist")
      more = mnist_files(path.empty() ? kFashionMnistDir : path, split);
    else if (path.empty())
      break;
    else if (name == "mnist")
      more = mnist_files(path, split);
    else if (name == "cifar10" || name == "cifar100")
      more = cifar_files(path, split, name == "cifar10" ? 10 : 100);
    else if (name == "h5" && split == Split::Train)
      more = {path};
    files.insert(files.end(), more.begin(), more.end());
  }
  return files;
}

}  // namespace ipg
