// nanochart._core: the compiled C++ core, exposed to Python. Errors become Python exceptions:
// InputError -> ValueError, FileError -> FileNotFoundError, ModelError -> nanochart.ModelError.
#include <pybind11/pybind11.h>

#include "nanochart/error.h"

namespace py = pybind11;

namespace nanochart::bindings {
void bind_rdf(py::module_& m);
void bind_cv(py::module_& m);
}  // namespace nanochart::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "nanochart's C++ core: differentiable RDF and TorchScript encoder CV";
  // Translators run newest first: ModelError is registered after the general one below.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nanochart::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const nanochart::FileError& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const nanochart::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  py::register_exception<nanochart::ModelError>(m, "ModelError", PyExc_ValueError);
  nanochart::bindings::bind_rdf(m);
  nanochart::bindings::bind_cv(m);
}
