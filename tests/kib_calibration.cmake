# kib_calibration.cmake — the end-to-end calibration test of the kib profile
# (tests/kib_calibration.sh): generator -> regstream run -> regstream report --check.
add_test(NAME kib_calibration
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/kib_calibration.sh $<TARGET_FILE:regstream-gen>
                 $<TARGET_FILE:regstream> ${CMAKE_CURRENT_BINARY_DIR}/kib_calibration)
set_tests_properties(kib_calibration PROPERTIES TIMEOUT 300)
