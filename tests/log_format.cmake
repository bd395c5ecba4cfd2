# log_format.cmake — --log-format text|json (tests/log_format.sh): JSON lines of a file-mode run
# (summary fields equal the text run's numbers, warnings and errors at their level), librdkafka's
# lines against a closed port and the mock-cluster demo as JSON, text unchanged, bad values exit 2.
# No broker needed. Smaller input in a sanitizer build.
find_program(BASH_PROGRAM bash)
if(BASH_PROGRAM)
  add_test(NAME log_format
           COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/log_format.sh
                   $<TARGET_FILE:regstream-gen> $<TARGET_FILE:regstream>
                   ${CMAKE_CURRENT_BINARY_DIR}/log_format)
  set_tests_properties(log_format PROPERTIES TIMEOUT 180)
  if(REGSTREAM_SANITIZE)
    set_tests_properties(log_format PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
  endif()
endif()
