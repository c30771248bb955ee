// The only file that knows about Python: it converts arguments, releases the
// GIL around long work and forwards to the plain C++ in cpp/include/skseg.
#include <pybind11/pybind11.h>

#include "skseg/build_info.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "skseg compiled core";
  m.def("build_info", []() {
    py::dict info;
    info["openmp"] = skseg::openmp_version();
    info["max_threads"] = skseg::max_threads();
    info["compiler"] = skseg::compiler();
    return info;
  });
}
