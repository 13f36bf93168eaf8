// Exceptions thrown by the nanochart core. Every failure is one of these, with a message that
// tells the user what to change; nothing in the core aborts the host process.
#pragma once

#include <stdexcept>
#include <string>

namespace nanochart {

// Base class: catch this to catch everything the core throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad arguments: shapes, non-finite coordinates, impossible RDF settings.
class InputError : public Error {
 public:
  using Error::Error;
};

// A model file that cannot be used: corrupt, without metadata, or breaking the model contract.
class ModelError : public Error {
 public:
  using Error::Error;
};

// A file that does not exist or cannot be read.
class FileError : public Error {
 public:
  using Error::Error;
};

}  // namespace nanochart
