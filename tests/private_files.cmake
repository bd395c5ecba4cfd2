# private_files.cmake — dead-letter files and snapshots 0600, the snapshot folders regstream
# makes 0700, under umask 022 and 000; the CSV keeps the usual mode (tests/private_files.sh).
find_program(BASH_PROGRAM bash)
if(BASH_PROGRAM)
  add_test(NAME private_files
           COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/private_files.sh
                   $<TARGET_FILE:regstream-gen> $<TARGET_FILE:regstream>
                   ${CMAKE_CURRENT_BINARY_DIR}/private_files)
  set_tests_properties(private_files PROPERTIES TIMEOUT 120)
endif()
