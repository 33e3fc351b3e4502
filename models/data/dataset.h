// Labelled image datasets in memory: float32 [n, c, h, w] pixels in [0, 1] and int32 [n]
// labels. Loaders check every size against the file before allocating, so a corrupt or
// hostile header gives a clear DataError, never a huge allocation or a crash.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ipg {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Dataset {
  std::string name;  // e.g. "fashion-mnist/train"
  Tensor images;     // float32 [n, c, h, w] in [0, 1], on the CPU
  Tensor labels;     // int32 [n], each in [0, num_classes)
  int num_classes = 0;
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

enum class Split { Train, Test };

// Where the default dataset lives (Debian's dataset-fashion-mnist package).
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// MNIST-format folder: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
Dataset load_mnist_format(const std::string& dir, Split split, const std::string& name);
// The images and labels files load_mnist_format reads (each .gz when there, else raw).
std::vector<std::string> mnist_files(const std::string& dir, Split split);

// Reads one IDX file (gzip or raw): returns the payload bytes and fills dims. The
// payload size implied by the header must equal what the file holds.
std::vector<uint8_t> read_idx(const std::string& path, std::vector<int64_t>* dims);

// CIFAR-10 (data_batch_1..5.bin / test_batch.bin) or CIFAR-100 (train.bin / test.bin,
// fine labels) binary folders.
Dataset load_cifar(const std::string& dir, Split split, int num_classes);
// The batch files load_cifar reads.
std::vector<std::string> cifar_files(const std::string& dir, Split split, int num_classes);

// An HDF5 array file (for sets such as ImageNet crops). Either groups /train and /test, or
// datasets x_train, y_train, x_test, y_test at the root, or one pair x, y at the root
// (then both splits are that pair). x: uint8 (0-255) or float32 ([0, 1]), [n, c, h, w]
// or [n, h, w, c] (an attribute layout="NCHW"|"NHWC" on x decides; without it the axis
// of size 1 or 3 is the channel axis) or [n, h, w]; y: integers [n] in [0, classes), with
// classes from an attribute "classes" on y or the file, else max(y) + 1.
Dataset load_h5_arrays(const std::string& path, Split split);

// Parses --data NAME[:PATH]: fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR,
// h5:FILE.
Dataset load_dataset(const std::string& spec, Split split);
// The files load_dataset(spec, ...) reads for either split ("h5:FILE": FILE; a folder
// dataset: its loader's files in the folder), for the output checks of commands that
// must not write over their data. Empty for a spec of no known format.
std::vector<std::string> dataset_files(const std::string& spec);

}  // namespace ipg
