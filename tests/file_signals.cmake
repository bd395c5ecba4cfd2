# file_signals.cmake — file mode stops cleanly on SIGTERM/SIGINT and resumes
# (tests/file_signals.sh). Smaller input in a sanitizer build.
add_test(NAME file_signals COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/file_signals.sh ${CMAKE_BINARY_DIR})
set_tests_properties(file_signals PROPERTIES TIMEOUT 300)
if(REGSTREAM_SANITIZE)
  set_tests_properties(file_signals PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
endif()
