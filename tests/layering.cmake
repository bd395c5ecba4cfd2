# tests/layering.cmake — the dependency graph of processor/'s rooms, checked
# on the built libraries (tests/layering.sh).
add_test(NAME layering COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/layering.sh ${CMAKE_BINARY_DIR})
set_tests_properties(layering PROPERTIES TIMEOUT 60)
