// A small JSON reader for the model metadata (`nanochart.json`). Private to the core: the
// metadata is a handful of keys, so a full JSON library would be a dependency for nothing.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nanochart::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Value> array;
  std::map<std::string, Value> object;

  // Nullptr when this is not an object or the key is absent.
  const Value* find(const std::string& key) const;
};

// Throws std::runtime_error with the byte offset of the first syntax error.
Value parse(const std::string& text);

const char* kind_name(Value::Kind kind);

}  // namespace nanochart::json
