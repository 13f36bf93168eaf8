// RDF_ENCODER may run inside a Python process on a thread that holds the GIL: PLUMED driven from
// Python's `plumed` package, whose calls do not release it. Once torch's Python module is
// imported, libtorch's autograd engine refuses to run there, and the core runs autograd when it
// loads a model and in backward passes. The plugin does not link Python: it finds the C API with
// dlsym and releases the lock around those calls only when the caller holds it.
#pragma once

#include <dlfcn.h>

namespace nanochart {

class PythonLockRelease {
 public:
  PythonLockRelease() {
    static const Api api = find();
    if (api.complete() && api.is_initialized() && api.holds_lock()) {
      state_ = api.save();
      restore_ = api.restore;
    }
  }
  ~PythonLockRelease() {
    if (state_ != nullptr) restore_(state_);
  }
  PythonLockRelease(const PythonLockRelease&) = delete;
  PythonLockRelease& operator=(const PythonLockRelease&) = delete;

 private:
  struct Api {
    int (*is_initialized)() = nullptr;
    int (*holds_lock)() = nullptr;
    void* (*save)() = nullptr;
    void (*restore)(void*) = nullptr;
    bool complete() const { return is_initialized && holds_lock && save && restore; }
  };

  static Api find() {
    Api api;
    api.is_initialized = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "Py_IsInitialized"));
    api.holds_lock = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "PyGILState_Check"));
    api.save = reinterpret_cast<void* (*)()>(dlsym(RTLD_DEFAULT, "PyEval_SaveThread"));
    api.restore = reinterpret_cast<void (*)(void*)>(dlsym(RTLD_DEFAULT, "PyEval_RestoreThread"));
    return api;
  }

  void* state_ = nullptr;
  void (*restore_)(void*) = nullptr;
};

}  // namespace nanochart
