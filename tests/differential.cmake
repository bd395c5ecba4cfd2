# tests/differential.cmake — ctest registrations of the Python-driven end-to-end checks:
#   differential  regstream run vs the reference model (tests/differential.py), many seeds
#   edge_cases    hand-written scenarios with hand-written expected rows (tests/edge_cases.py)
# Both exit 77 (skipped) while regstream or the generator is not built. Under a sanitizer build
# they get --sanitized, which shrinks the inputs (REGSTREAM_SANITIZED=1 does the same).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(REGSTREAM_DIFFERENTIAL_ARGS --build-dir ${CMAKE_BINARY_DIR})
  if(REGSTREAM_SANITIZE)
    list(APPEND REGSTREAM_DIFFERENTIAL_ARGS --sanitized)
  endif()
  add_test(NAME differential
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/differential.py
                   ${REGSTREAM_DIFFERENTIAL_ARGS})
  add_test(NAME edge_cases
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/edge_cases.py
                   --build-dir ${CMAKE_BINARY_DIR})
  set_tests_properties(differential edge_cases PROPERTIES SKIP_RETURN_CODE 77)
  set_tests_properties(differential PROPERTIES TIMEOUT 900)
  set_tests_properties(edge_cases PROPERTIES TIMEOUT 300)
endif()
