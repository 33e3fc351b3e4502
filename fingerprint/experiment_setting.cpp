// The typed settings of an experiment (experiment.h) as people and files name them:
// methods, modes, convergence policies, labels and ids, and the extraction options and
// round seeds a setting runs with.
#include <cstdio>
#include <stdexcept>

#include "fingerprint/experiment.h"
#include "engine/number_text.h"

namespace ipg {

const char* method_name(Method m) {
  switch (m) {
    case Method::IPGuard:
      return "ipguard";
    case Method::CWL2:
      return "cwl2";
    case Method::FGSM:
      return "fgsm";
    case Method::IGSM:
      return "igsm";
    case Method::Random:
      return "random";
  }
  return "?";
}

Method parse_method(const std::string& name) {
  for (Method m : kAllMethods)
    if (name == method_name(m)) return m;
  throw std::invalid_argument("unknown method '" + name + "' (ipguard, cwl2, fgsm, igsm, random)");
}

const char* param_name(Method m) {
  switch (m) {
    case Method::IPGuard:
    case Method::CWL2:
      return "k";
    case Method::FGSM:
    case Method::IGSM:
      return "eps";
    case Method::Random:
      return "";
  }
  return "";
}

const char* convergence_name(Convergence c) {
  return c == Convergence::Paper ? "paper" : "until-converged";
}

std::string mode_suffix(const Mode& m) {
  return std::string(m.init == Init::Train ? "T" : "R") +
         (m.target == TargetLabel::LeastLikely ? "L" : "R");
}

std::string mode_long(const Mode& m) {
  return std::string(m.init == Init::Train ? "train" : "random") + "/" +
         (m.target == TargetLabel::LeastLikely ? "least-likely" : "random");
}

Mode parse_mode(const std::string& s) {
  for (const Mode& m : kAllModes)
    if (s == mode_suffix(m) || s == mode_long(m)) return m;
  throw std::invalid_argument("unknown mode '" + s +
                              "' (train/least-likely, train/random, random/least-likely, "
                              "random/random, or TL, TR, RL, RR)");
}

std::string setting_label(const Setting& s) {
  std::string out = method_name(s.method);
  if (s.method != Method::Random) out += std::string(" ") + param_name(s.method) + "=" + number_text(s.param);
  out += " " + mode_suffix(s.mode);
  if (s.convergence == Convergence::UntilConverged) out += " until-converged";
  return out;
}

std::string setting_id(const Setting& s) {
  std::string out = method_name(s.method);
  if (s.method != Method::Random) {
    out += std::string("_") + param_name(s.method);
    for (char c : number_text(s.param)) out += c == '.' ? 'p' : (c == '+' ? 'P' : (c == '-' ? 'm' : c));
  }
  out += "_" + mode_suffix(s.mode);
  if (s.convergence == Convergence::UntilConverged) out += "_uc";
  return out;
}

ExtractOptions extract_options(const Setting& s, const ExtractOptions& common) {
  ExtractOptions o = common;
  o.method = method_name(s.method);
  if (s.method == Method::IPGuard || s.method == Method::CWL2) o.k = s.param;
  if (s.method == Method::FGSM || s.method == Method::IGSM) o.eps = s.param;
  o.init = s.mode.init == Init::Train ? "train" : "random";
  o.target = s.mode.target == TargetLabel::LeastLikely ? "least-likely" : "random";
  o.iters = s.budget.iters;
  o.lr = s.budget.lr;
  o.binary_steps = s.budget.binary_steps;
  o.c0 = s.budget.c0;
  o.alpha = s.budget.alpha;
  return o;
}

uint64_t round_seed(uint64_t seed, int64_t round) {
  if (round == 0) return seed;
  // splitmix64 of (seed, round): rounds draw streams unrelated to each other and to seed.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(round + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace ipg
