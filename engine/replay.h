// A stretch of engine work recorded once and replayed: the fingerprint loop's
// `check_every` iterations between two reads of the converged flags. On CUDA it is a CUDA
// graph captured from the device's stream: one launch per replay instead of a few dozen
// kernel launches per iteration, and no host work at all. On the CPU the recorded
// function itself runs again at each replay: the twin that lets the replayed loop be
// tested against the plain one on any machine.
//
// What may be recorded: ops on tensors that exist before recording and outlive the
// replays, whose arguments do not change between replays (state that changes, such as
// Adam's step count, lives in device memory: ops::boundary_adam_step_at). Nothing that
// allocates, synchronizes or reads values back: on CUDA such an op makes the capture fail
// and record() returns false (the caller then runs the work directly).
#pragma once

#include <functional>
#include <string>

#include "engine/device.h"

namespace ipg {

class Replay {
 public:
  explicit Replay(Device device);
  ~Replay();
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  // Records body without running it (CUDA) or keeps it (CPU). False, with *why, when the
  // device could not capture it (an op failed or synchronized inside the capture, or body
  // allocated): nothing of body has run on the device then, but any host-side effects of
  // body have happened.
  bool record(std::function<void()> body, std::string* why);
  bool recorded() const;
  // Runs the recording once more (asynchronously on CUDA, like any op).
  void replay();

 private:
  Device device_;
  std::function<void()> body_;  // CPU
  void* exec_ = nullptr;        // CUDA: the instantiated graph
};

namespace detail {
// Called by Tensor::to(cpu), which every read back to the host goes through (to_vector,
// item, cpu()): throws std::logic_error while a CPU recording replays. On CUDA such a read
// synchronizes the stream, which fails a capture; the CPU twin refuses it too, so a
// read-back slipped into the fingerprint loop fails the tests here instead of silently
// disabling CUDA graphs on a GPU.
void check_host_read(const char* what);
}  // namespace detail

}  // namespace ipg
