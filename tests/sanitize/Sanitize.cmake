# Tests that start nginx, under the sanitizers.
#
# In a DWRTC_SANITIZE build, nginx is the sanitized one ci/nginx-asan.sh
# builds (NGINX_BINARY) and the module is built with the same sanitizers.
# Such a test's command then runs under run-checked.sh, which collects the
# reports of every nginx process it starts and fails the test on any of
# them (see that script). In other builds the command is left as it is.
#
#   dwrtc_nginx_test_command(_cmd integration_routing node --test ...)
#   add_test(NAME integration_routing COMMAND ${_cmd})
#
# Reports of a test go to <build>/sanitizer-reports/<test name>/.

set(DWRTC_SANITIZE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(dwrtc_nginx_test_command out_var test_name)
    if(DWRTC_SANITIZE)
        set(${out_var}
            bash ${DWRTC_SANITIZE_DIR}/run-checked.sh
            "${CMAKE_BINARY_DIR}/sanitizer-reports/${test_name}"
            ${ARGN} PARENT_SCOPE)
    else()
        set(${out_var} ${ARGN} PARENT_SCOPE)
    endif()
endfunction()
