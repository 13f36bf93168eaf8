# nanochart_find_torch(<python> [REQUIRED]): find libtorch through an installed torch wheel, which
# ships its CMake config; the Python interpreter that has torch says where. Used by the top-level
# build and by cpp/ on its own.
macro(nanochart_find_torch python)
  if(NOT Torch_DIR AND EXISTS "${python}")
    execute_process(
      COMMAND "${python}" -c "import torch; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE nanochart_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE nanochart_torch_failed ERROR_QUIET)
    if(nanochart_torch_failed EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH "${nanochart_torch_prefix}")
    endif()
  endif()
  find_package(Torch ${ARGN})
endmacro()
