# disk_faults.cmake — disk faults in file mode (tests/disk_faults.sh): ENOSPC, EIO and EACCES
# injected into the Nth open, write, fsync, rename or mkdir through util/fs (REGSTREAM_FAULT) on
# the snapshot folder, the dead-letter file and the CSV give exit 1 and one line, leave nothing
# half-written that looks valid, and the same command then resumes exact; plus a real full tmpfs.
find_program(BASH_PROGRAM bash)
if(BASH_PROGRAM)
  add_test(NAME disk_faults
           COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/disk_faults.sh
                   $<TARGET_FILE:regstream-gen> $<TARGET_FILE:regstream>
                   ${CMAKE_CURRENT_BINARY_DIR}/disk_faults)
  set_tests_properties(disk_faults PROPERTIES TIMEOUT 240)
  if(REGSTREAM_SANITIZE)
    set_tests_properties(disk_faults PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
  endif()
endif()
