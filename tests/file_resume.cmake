# file_resume.cmake — file mode resumes from snapshots after kill -9 (tests/file_resume.sh):
# random kills and restarts (other thread counts too) give the uninterrupted run's CSV, dead
# letters and counts; a corrupt newest snapshot falls back; another configuration or input
# list is refused. Smaller inputs in a sanitizer build (REGSTREAM_SANITIZED=1).
find_program(BASH_PROGRAM bash)
if(BASH_PROGRAM)
  add_test(NAME file_resume
           COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/file_resume.sh
                   $<TARGET_FILE:regstream-gen> $<TARGET_FILE:regstream>
                   ${CMAKE_CURRENT_BINARY_DIR}/file_resume)
  set_tests_properties(file_resume PROPERTIES TIMEOUT 300)
  if(REGSTREAM_SANITIZE)
    set_tests_properties(file_resume PROPERTIES ENVIRONMENT REGSTREAM_SANITIZED=1)
  endif()
endif()
