// Post-processing attacks: names, parameters, and the modifications before training.
#include "models/postprocess.h"
#include "engine/number_text.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace ipg {

std::string attack_name(Attack a) {
  switch (a) {
    case Attack::FTLL:
      return "ftll";
    case Attack::FTAL:
      return "ftal";
    case Attack::RTLL:
      return "rtll";
    case Attack::RTAL:
      return "rtal";
    case Attack::WeightPrune:
      return "wp";
    case Attack::FilterPrune:
      return "fp";
  }
  throw std::logic_error("attack_name: unknown attack");
}

std::string exact_number(double v) {
  char buf[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

PostProcess parse_post_process(const std::string& text) {
  static const char* const kKnown = " (ftll, ftal, rtll, rtal, wp:P, fp:C)";
  PostProcess p;
  if (text == "ftll" || text == "ftal" || text == "rtll" || text == "rtal") {
    p.attack = text == "ftll"   ? Attack::FTLL
               : text == "ftal" ? Attack::FTAL
               : text == "rtll" ? Attack::RTLL
                                : Attack::RTAL;
    return p;
  }
  const std::string prefix = text.substr(0, 3);
  if (prefix != "wp:" && prefix != "fp:")
    throw std::invalid_argument(text + ": unknown attack" + kKnown);
  p.attack = prefix == "wp:" ? Attack::WeightPrune : Attack::FilterPrune;
  const std::string number = text.substr(3);
  const char* begin = number.c_str();
  char* end = nullptr;
  p.param = number.empty() ? NAN : std::strtod(begin, &end);
  if (number.empty() || end != begin + number.size())
    throw std::invalid_argument(text + ": '" + number + "' is not a number");
  if (!(p.param > 0 && p.param < 1))
    throw std::invalid_argument(text + ": the fraction after '" + prefix + "' must be in (0, 1)");
  return p;
}

std::string to_string(const PostProcess& p) {
  const std::string name = attack_name(p.attack);
  if (p.attack == Attack::WeightPrune || p.attack == Attack::FilterPrune)
    return name + ":" + exact_number(p.param);
  return name;
}

std::string file_stem(const PostProcess& p) {
  std::string s = to_string(p);
  for (char& c : s)
    if (c == ':') c = '-';
  return s;
}

Modifications modifications(const PostProcess& p) {
  Modifications m;
  switch (p.attack) {
    case Attack::FTLL:
      m.last_layer_only = true;
      break;
    case Attack::FTAL:
      break;
    case Attack::RTLL:
      m.reinit_last = true;
      m.last_layer_only = true;
      break;
    case Attack::RTAL:
      m.reinit_last = true;
      break;
    case Attack::WeightPrune:
      m.prune_weights = p.param;
      break;
    case Attack::FilterPrune:
      m.prune_filters = p.param;
      break;
  }
  return m;
}

std::string apply_modifications(Network& net, const Modifications& m, uint64_t seed,
                                TrainOptions* opt) {
  std::string done;
  if (m.reinit_last) {
    // Its own stream: the shuffling draws from `seed` itself.
    reinit_last_layer(net, seed ^ 0x5EED1A57ull);
    done += ", last layer re-initialized";
  }
  if (m.prune_weights > 0) {
    auto masks = prune_weights(net, m.prune_weights);
    opt->masks.insert(opt->masks.end(), masks.begin(), masks.end());
    done += ", " + number_text(m.prune_weights) + " of weights pruned";
  }
  if (m.prune_filters > 0) {
    auto masks = prune_filters(net, m.prune_filters);
    opt->masks.insert(opt->masks.end(), masks.begin(), masks.end());
    done += ", " + number_text(m.prune_filters) + " of filters pruned per layer";
  }
  if (m.last_layer_only) {
    opt->last_layer_only = true;
    done += ", last layer only";
  }
  return done;
}

Suspect post_process(std::unique_ptr<Network> target, const PostProcess& p,
                     const Dataset& train_set, const Dataset* test, TrainOptions opt,
                     const EpochCallback& on_epoch, const BatchCallback& on_batch) {
  if (!target) throw std::invalid_argument("post_process: no target network");
  Suspect s;
  s.applied = apply_modifications(*target, modifications(p), opt.seed, &opt);
  s.epochs = train(*target, train_set, test, opt, on_epoch, on_batch);
  s.net = std::move(target);
  return s;
}

}  // namespace ipg
