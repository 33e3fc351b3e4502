// Staged execution of oneDNN primitives on plain caller buffers (see dnnl_plan.h).
#include "kernels/cpu/dnnl_plan.h"

#include <stdexcept>
#include <unordered_map>

namespace ipg::kernels::cpu::dnnl_plan {

namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

}  // namespace

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void Plan::add(int arg, Role role, const dnnl::memory::desc& user,
               const dnnl::memory::desc& inner) {
  if (operands.empty()) workspace_bytes = align_up(scratchpad.get_size());
  Operand op;
  op.arg = arg;
  op.role = role;
  op.user = user;
  op.inner = inner;
  op.staged = role == Role::Accumulate || inner != user;
  if (op.staged) {
    op.offset = workspace_bytes;
    workspace_bytes += align_up(inner.get_size());
    dnnl::engine& eng = cpu_engine();
    if (role == Role::Input || role == Role::Update)
      op.in = dnnl::reorder(dnnl::reorder::primitive_desc(eng, user, eng, inner));
    if (role != Role::Input) {
      dnnl::primitive_attr attr;
      if (role == Role::Accumulate) {
        dnnl::post_ops sum;
        sum.append_sum(1.f);
        attr.set_post_ops(sum);
      }
      op.out = dnnl::reorder(dnnl::reorder::primitive_desc(eng, inner, eng, user, attr));
    }
  }
  operands.push_back(std::move(op));
}

const Operand* find_operand(const Plan& plan, int arg) {
  for (const Operand& op : plan.operands)
    if (op.arg == arg) return &op;
  return nullptr;
}

void execute(const Plan& plan, std::initializer_list<const void*> buffers, void* workspace,
             size_t workspace_bytes, const std::string& what, const Prestaged* pre) {
  if (workspace_bytes < plan.workspace_bytes)
    throw std::invalid_argument(what + ": workspace of " + std::to_string(workspace_bytes) +
                                " bytes, needs " + std::to_string(plan.workspace_bytes));
  if (buffers.size() != plan.operands.size())
    throw std::logic_error(what + ": " + std::to_string(buffers.size()) + " buffers for " +
                           std::to_string(plan.operands.size()) + " operands");
  using dnnl::memory;
  dnnl::engine& eng = cpu_engine();
  dnnl::stream& strm = cpu_stream();
  char* base = static_cast<char*>(workspace);
  std::unordered_map<int, memory> args;
  if (plan.scratchpad.get_size() > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(plan.scratchpad, eng, base));
  struct Pending {
    const dnnl::reorder* reorder;
    memory inner, user;
  };
  std::vector<Pending> after;  // outputs to convert into the caller's buffers
  auto buffer = buffers.begin();
  for (const Operand& op : plan.operands) {
    memory user(op.user, eng, const_cast<void*>(*buffer++));
    if (!op.staged) {
      args.emplace(op.arg, user);
      continue;
    }
    if (pre && pre->arg == op.arg && op.role == Role::Input) {
      args.emplace(op.arg, memory(op.inner, eng, const_cast<void*>(pre->inner)));
      continue;
    }
    memory inner(op.inner, eng, base + op.offset);
    if (op.role == Role::Input || op.role == Role::Update) op.in.execute(strm, user, inner);
    if (op.role != Role::Input) after.push_back({&op.out, inner, user});
    args.emplace(op.arg, inner);
  }
  plan.primitive.execute(strm, args);
  for (Pending& p : after) p.reorder->execute(strm, p.inner, p.user);
  strm.wait();
}

}  // namespace ipg::kernels::cpu::dnnl_plan
