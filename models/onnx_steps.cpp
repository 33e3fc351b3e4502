// ONNX reader, the load-time pass: each node in order is either folded into a constant
// (on the host, or run once with the engine when all its inputs are constant) or becomes
// one runtime step, checked on a one-row input so that a bad node fails at load naming it.
// What a small hostile file can make the loader hold is bounded: each one-row tensor is
// dropped after its last reader, and the constants folded at load may total at most
// twice the file's own weights plus kFoldSlack elements (an 8 KB file of Expand and
// ConstantOfShape nodes held gigabytes before).
#include <algorithm>

#include "engine/hdf5.h"
#include "models/onnx_load_internal.h"
#include "onnx/onnx_pb.h"

namespace ipg::onnx_detail {

namespace {

// FNV-1a over a constant's elements: which kept tensor holds the same data.
uint64_t digest(const HostTensor& h) {
  uint64_t x = 1469598103934665603ull ^ uint64_t(h.is_int);
  auto mix = [&x](const void* p, size_t bytes) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t k = 0; k < bytes; ++k) x = (x ^ b[k]) * 1099511628211ull;
  };
  if (h.is_int) mix(h.i.data(), h.i.size() * sizeof(int64_t));
  else mix(h.f.data(), h.f.size() * sizeof(float));
  return x;
}

}  // namespace

Tensor* OnnxStore::keep(const HostTensor& h, const std::string& name) {
  const bool weight = name == "weight" || name == "bias" || name == "scale";
  const std::string key = "t" + std::to_string(kept_++) + "_" + name;
  Tensor* t = weight ? &add_parameter(key, to_tensor(h)) : &add_buffer(key, to_tensor(h));
  index_.emplace(name + shape_text(h.shape), std::make_pair(digest(h), t));
  return t;
}

Tensor* OnnxStore::find(const HostTensor& h, const std::string& name) const {
  const auto range = index_.equal_range(name + shape_text(h.shape));
  if (range.first == range.second) return nullptr;
  const uint64_t d = digest(h);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second.first == d) return it->second.second;
  return nullptr;
}

void set_releases(std::vector<Step>& steps, size_t num_values, int keep_out) {
  std::vector<int> last(num_values, -1);
  for (size_t s = 0; s < steps.size(); ++s) {
    steps[s].release.clear();
    for (int v : steps[s].in) last[size_t(v)] = int(s);
  }
  for (size_t v = 0; v < num_values; ++v)
    if (last[v] >= 0 && int(v) != keep_out) steps[size_t(last[v])].release.push_back(int(v));
}

std::vector<Step> build_steps(const onnx::GraphProto& g, GraphIndex& gi, const KeepFn& keep,
                              const std::string& display, Device device) {
  const std::map<std::string, int>& id = gi.id;
  std::vector<Value>& values = gi.values;
  const OpContext ctx{gi.declared_batch, gi.opset, gi.fixed_batch > 0};
  if (ctx.fixed_batch) values[size_t(gi.in_id)].shape[0] = gi.fixed_batch;
  const std::vector<int>& order = gi.order;
  const std::vector<bool>& skip = gi.skip;
  std::vector<Step> steps;
  const auto& ops = supported_ops();
  // The load-time run (on one row; on fixed_batch rows when specialized): tensors of
  // runtime values.
  std::map<int, Tensor> live;
  live[gi.in_id] = Tensor::zeros(values[size_t(gi.in_id)].shape, device);
  // Per value, the position in `order` of its last reader.
  std::vector<size_t> last(values.size(), 0);
  for (size_t pos = 0; pos < order.size(); ++pos)
    if (!skip[size_t(order[pos])])
      for (const std::string& name : g.node(order[pos]).input())
        if (!name.empty() && id.count(name)) last[size_t(id.at(name))] = pos;
  int64_t weights = 0;  // elements of the file's own constants
  for (const Value& v : values)
    if (v.is_const) weights += v.c().numel();
  const int64_t fold_limit = 2 * weights + kFoldSlack;
  int64_t folded_total = 0;
  size_t done = order.size();  // the position of the node built last
  for (size_t pos = 0; pos < order.size(); ++pos) {
    const int i = order[pos];
    if (skip[size_t(i)]) continue;
    const auto& n = g.node(i);
    // The one-row tensors the previous node read last are no longer needed.
    if (done != order.size())
      for (const std::string& name : g.node(order[done]).input())
        if (!name.empty() && id.count(name) && last[size_t(id.at(name))] == done &&
            id.at(name) != gi.out_id)
          live.erase(id.at(name));
    done = pos;
    try {
      if (!(n.domain().empty() || n.domain() == "ai.onnx"))
        throw OnnxError("operator " + n.domain() + "." + n.op_type() + " is not supported (only the default domain is)");
      if (std::find(ops.begin(), ops.end(), n.op_type()) == ops.end()) {
        std::string list;
        for (const auto& s : ops) list += (list.empty() ? "" : ", ") + s;
        throw OnnxError("operator " + n.op_type() + " is not supported (supported: " + list + ")");
      }
      std::vector<const Value*> in;
      bool all_const = true;
      for (const std::string& name : n.input()) {
        if (name.empty()) {
          in.push_back(nullptr);
          continue;
        }
        const Value& v = values[size_t(id.at(name))];
        if (!v.known) throw OnnxError("input '" + name + "' is an output this reader does not compute");
        in.push_back(&v);
        all_const = all_const && v.is_const;
      }
      std::vector<HostTensor> outs;
      bool folded = false;
      if (n.op_type() == "Shape" && !in.empty() && in[0] && !in[0]->is_const) {
        check_attrs(n, {"start", "end"});
        if (find_attr(n, "start") || find_attr(n, "end")) throw OnnxError("Shape with start/end is not supported");
        HostTensor s;
        s.is_int = true;
        s.i = in[0]->shape;
        if (!ctx.fixed_batch) s.i[0] = kBatch;
        s.shape = {int64_t(s.i.size())};
        outs.push_back(s);
        folded = true;
      } else if (all_const) {
        const FoldBudget budget(fold_limit - folded_total);
        std::vector<const HostTensor*> c;
        for (const Value* v : in) c.push_back(v ? &v->c() : nullptr);
        folded = fold_constant(n, c, outs);
        if (!folded) {
          // An operator without a host evaluation (a Relu on constants, say): run it once
          // with the engine and keep its result.
          std::vector<Value> as_runtime;
          for (const Value* v : in) {
            as_runtime.emplace_back();
            if (v) as_runtime.back() = Value{true, false, {}, v->c().shape};
          }
          std::vector<const Value*> ptrs;
          std::vector<Tensor> args;
          for (size_t k = 0; k < in.size(); ++k) {
            ptrs.push_back(in[k] ? &as_runtime[k] : nullptr);
            if (in[k]) args.push_back(to_tensor(in[k]->c()));
          }
          std::vector<int> rt;
          OnnxStore scratch;
          const RunFn fn = make_op(n, ptrs, [&](const HostTensor& h, const std::string& nm) { return scratch.keep(h, nm); }, rt, ctx);
          std::vector<Tensor> rargs;
          for (int k : rt) rargs.push_back(to_tensor(in[size_t(k)]->c()));
          outs.push_back(from_tensor(fn(rargs)));
          folded = true;
        }
      }
      if (folded) {
        if (size_t(n.output_size()) < outs.size()) outs.resize(size_t(n.output_size()));
        for (size_t k = 0; k < outs.size(); ++k) {
          if (n.output(int(k)).empty()) continue;
          folded_total += outs[k].numel();
          if (folded_total > fold_limit)
            throw OnnxError("the constants folded at load reach " + std::to_string(folded_total) +
                            " elements, above the limit of " + std::to_string(fold_limit) +
                            " (twice the file's weights + " + std::to_string(kFoldSlack) + ")");
          Value& v = values[size_t(id.at(n.output(int(k))))];
          v.known = v.is_const = true;
          v.set(std::move(outs[k]));
        }
        continue;
      }
      Step step;
      std::vector<int> rt;
      step.fn = make_op(n, in, keep, rt, ctx);
      std::vector<Tensor> args;
      for (int k : rt) {
        const int v = id.at(n.input(k));
        step.in.push_back(v);
        args.push_back(live.at(v));
      }
      if (n.output_size() < 1 || n.output(0).empty()) throw OnnxError("the node has no output");
      step.out = id.at(n.output(0));
      const Tensor y = step.fn(args);
      if (!ctx.fixed_batch && y.dim(0) != 1) throw BatchRuleError("the output " + shape_str(y.shape()) + " does not keep the batch dimension first");
      // The limit is per row (the batch is the caller's).
      checked_numel(ctx.fixed_batch ? Shape{y.numel() / gi.fixed_batch} : y.shape(), "output");
      Value& ov = values[size_t(step.out)];
      ov.known = true;
      ov.shape = y.shape();
      live[step.out] = y;
      steps.push_back(std::move(step));
    } catch (const FileError&) {
      throw;
    } catch (const BatchRuleError& e) {
      gi.batch_rule = true;
      fail(display, node_name(g, i) + ": " + e.what());
    } catch (const std::exception& e) {
      fail(display, node_name(g, i) + ": " + (e.what()[0] ? e.what() : "failed"));
    }
  }
  return steps;
}

}  // namespace ipg::onnx_detail
