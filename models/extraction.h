// Model extraction from a target network, beyond the paper's post-processing: a fresh
// network (of the target's architecture or another) trained on what the target says about
// inputs the attacker holds without their true labels.
//   distillation (Hinton, Vinyals and Dean 2015): the target's soft labels, softmax of its
//     logits at temperature T, against the student's at the same T; the loss
//     T^2 * mean over rows of cross-entropy(soft targets, softmax(student logits / T)).
//   label-only: the target's argmax labels alone (what a label API gives), as hard labels.
// Neither uses the images' own labels; both keep the target's class count.
#pragma once

#include <string>

#include "models/classifier.h"
#include "models/data/dataset.h"
#include "models/network.h"

namespace ipg {

enum class Extraction { Distill, LabelOnly };

// "distill", "label-only".
std::string extraction_name(Extraction e);
// "distill" | "label-only" -> Extraction; std::invalid_argument otherwise.
Extraction parse_extraction(const std::string& name);

// A copy of `images` (same pixels, shared storage) labelled by `teacher`: its argmax on
// each image, computed on `device` in evaluation mode. num_classes is the teacher's.
Dataset teacher_labelled(Classifier& teacher, const Dataset& images, Device device);

// The teacher's softmax at temperature T of every image: float32 [n, classes] on the CPU,
// rows summing to 1. T > 0 (std::invalid_argument otherwise).
Tensor soft_targets(Network& teacher, const Tensor& images, float temperature, Device device,
                    int batch = 500);

// Hinton's distillation loss of student logits [n, k] against soft targets [n, k] (same
// device; rows of probabilities): T^2 * mean_rows(-sum_k p_k log softmax(z / T)_k), stable
// for logits of any size (shifted by the row max). Differentiable in the logits.
Tensor distillation_loss(const Tensor& logits, const Tensor& targets, float temperature);

}  // namespace ipg
