# fuzz.cmake — owned by the fuzzing work: the harnesses of tests/fuzz/.
#
# Always: fuzz_corpus_<name>, each harness linked with tests/fuzz/corpus_driver.c
# (no libFuzzer), registered as the ctest fuzz_corpus_<name> over
# tests/fuzz/corpus/<name>/ — the seeds and every crash reproducer found so far.
#
# With -DREGSTREAM_FUZZ=ON and clang: fuzz_<name>, the libFuzzer binaries
# (-fsanitize=fuzzer,address,undefined), and the project libraries compiled
# with -fsanitize=fuzzer-no-link,address,undefined for coverage. Use a build
# dir of its own; tests/fuzz/run-smoke.sh does:
#   CC=clang cmake -S . -B build-fuzz -G Ninja -DREGSTREAM_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_all
#   build-fuzz/tests/fuzz_decode -max_len=256 tests/fuzz/corpus/decode
set(FUZZ_SRC ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(FUZZ_HARNESSES decode schema ocf replay config report snapshot properties)

function(fuzz_project_lib name)
  if(name MATCHES "^(replay|config|report|snapshot|properties)$")
    set(lib regstream_app PARENT_SCOPE)
  else()
    set(lib regstream_avro PARENT_SCOPE)
  endif()
endfunction()

foreach(name ${FUZZ_HARNESSES})
  fuzz_project_lib(${name})
  add_executable(fuzz_corpus_${name} ${FUZZ_SRC}/fuzz_${name}.c ${FUZZ_SRC}/fuzz_common.c
                                     ${FUZZ_SRC}/corpus_driver.c)
  target_link_libraries(fuzz_corpus_${name} PRIVATE ${lib} m)
  add_test(NAME fuzz_corpus_${name} COMMAND fuzz_corpus_${name} ${FUZZ_SRC}/corpus/${name})
  set_tests_properties(fuzz_corpus_${name} PROPERTIES TIMEOUT 300 ENVIRONMENT
                       "LSAN_OPTIONS=suppressions=${FUZZ_SRC}/lsan.supp:print_suppressions=0")
endforeach()

if(REGSTREAM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "REGSTREAM_FUZZ=ON needs clang (libFuzzer): CC=clang cmake ...")
  endif()
  set(FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
  # Coverage and sanitizers for the code under test; whatever links these
  # libraries gets the sanitizer runtimes.
  foreach(lib ${REGSTREAM_LIBRARIES})
    target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link ${FUZZ_SANITIZE})
    target_link_options(${lib} INTERFACE -fsanitize=address,undefined)
  endforeach()
  add_custom_target(fuzz_all)
  foreach(name ${FUZZ_HARNESSES})
    fuzz_project_lib(${name})
    add_executable(fuzz_${name} ${FUZZ_SRC}/fuzz_${name}.c ${FUZZ_SRC}/fuzz_common.c)
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${FUZZ_SANITIZE})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${name} PRIVATE ${lib} m)
    add_dependencies(fuzz_all fuzz_${name})
  endforeach()
endif()
