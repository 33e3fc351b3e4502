// The Python module `ipguard`: registers every class and function (the other files of
// tools/python) and maps the libraries' exceptions to Python's.
#include <pybind11/pybind11.h>

#include "engine/device.h"
#include "engine/hdf5.h"
#include "engine/threads.h"
#include "models/data/dataset.h"
#include "tools/ipguard/cli.h"
#include "tools/python/bindings.h"

PYBIND11_MODULE(ipguard, m) {
  namespace pyb = pybind11;
  m.doc() =
      "ipguard: fingerprint image classifiers by points near their decision boundary and "
      "verify suspect models against the fingerprint (IPGuard, AsiaCCS'21).\n"
      "Images are numpy float32 arrays [n, C, H, W] of [0, 1] pixels, C-contiguous.";
  m.attr("__version__") = IPG_VERSION;

  // Translators run newest first, before pybind11's own (invalid_argument -> ValueError,
  // other std::exception -> RuntimeError).
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ipg::FileError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const ipg::DataError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const ipg::cli::UsageError& e) {  // the CLI's checks (grid text, output paths)
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def(
      "set_threads",
      [](int n) {
        if (n < 0) throw std::invalid_argument("threads must be at least 0 (0: the idle cores)");
        return ipg::set_threads(n);
      },
      pyb::arg("n"),
      "Sets the CPU thread count for the rest of the process (0: OMP_NUM_THREADS when set, "
      "else the cores idle now) and "
      "returns it. Results are the same bits for the same seed and thread count.");
  m.def("cuda_available", &ipg::cuda_available, "Whether a CUDA device can be used.");

  ipg::py::register_model(m);
  ipg::py::register_fingerprint(m);
  ipg::py::register_verify(m);
  ipg::py::register_experiment(m);
}
