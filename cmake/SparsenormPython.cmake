# The Python interpreter the module is built for and the Python tests run
# under: -DPython3_EXECUTABLE=... names it; otherwise the first python3 on
# PATH that can import NumPy (on a Debian machine where a pyenv or conda
# python3 without NumPy comes first on PATH, that is /usr/bin/python3).
# Sets Python3_FOUND and the Python3:: targets, as FindPython3 does.

function(_sparsenorm_python_has_numpy result candidate)
  execute_process(COMMAND "${candidate}" -c "import numpy"
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    set(${result} FALSE PARENT_SCOPE)
  endif()
endfunction()

if(NOT DEFINED Python3_EXECUTABLE)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.25)
    find_program(SPARSENORM_NUMPY_PYTHON NAMES python3
                 VALIDATOR _sparsenorm_python_has_numpy
                 DOC "The first python3 on PATH that imports NumPy")
  else()  # no validators: the first python3, with NumPy or not
    find_program(SPARSENORM_NUMPY_PYTHON NAMES python3 DOC "The first python3 on PATH")
  endif()
  if(SPARSENORM_NUMPY_PYTHON)
    set(Python3_EXECUTABLE "${SPARSENORM_NUMPY_PYTHON}")
  endif()
endif()
find_package(Python3 3.8 QUIET COMPONENTS Interpreter Development.Module)
