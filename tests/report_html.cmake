# report_html.cmake — `regstream report --html` in headless Chromium
# (tests/report_html.sh): the figures page loads without console messages,
# a screenshot is kept in the build dir (report_html/screenshot.png), and the
# numbers in the page equal the text report's and the CSV's, also under
# --min-cell. The page is made by regstream (under ASan in that build);
# Chromium itself is not instrumented, so the test takes the same time there.
find_program(BASH_PROGRAM bash)
if(BASH_PROGRAM)
  add_test(NAME report_html
           COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/report_html.sh
                   $<TARGET_FILE:regstream-gen> $<TARGET_FILE:regstream>
                   ${CMAKE_CURRENT_BINARY_DIR}/report_html)
  set_tests_properties(report_html PROPERTIES TIMEOUT 180)
endif()
