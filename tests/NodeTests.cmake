# Node.js test files that start nginx (tests/lib/nginx.mjs), registered the
# same way wherever they live:
#
#   dwrtc_add_node_tests(PREFIX integration LABEL integration
#                        DEFAULT_TIMEOUT 300 TIMEOUTS links=240 access=120
#                        [SERIAL])
#
# makes every *.test.mjs of the calling directory a test named
# <PREFIX>_<name>, run by Node.js's test runner from the repository root
# with the built module (DWRTC_MODULE), the repository (DWRTC_REPO) and
# NGINX_BINARY (DWRTC_NGINX) in its environment. TIMEOUTS are upper bounds
# in seconds for single tests; SERIAL runs each test with nothing beside it.
# In a DWRTC_SANITIZE build every test fails on a sanitizer report of any
# nginx it started (tests/sanitize/Sanitize.cmake). A missing node or ws
# keeps the tests: they fail and say why, rather than vanish.

include(${CMAKE_CURRENT_LIST_DIR}/sanitize/Sanitize.cmake)

function(dwrtc_add_node_tests)
    cmake_parse_arguments(A "SERIAL" "PREFIX;LABEL;DEFAULT_TIMEOUT" "TIMEOUTS" ${ARGN})

    find_program(NODE_EXECUTABLE node)
    set(_node ${NODE_EXECUTABLE})
    if(NOT _node)
        message(WARNING "node not found: the ${A_LABEL} tests will fail "
                        "(Debian: apt-get install nodejs)")
        set(_node node)
    endif()
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/node_modules/ws)
        message(WARNING "node_modules/ws missing: run `npm ci` in "
                        "${PROJECT_SOURCE_DIR} before the ${A_LABEL} tests")
    endif()

    get_property(_module_so GLOBAL PROPERTY DWRTC_MODULE_SO)
    if(NOT _module_so)
        set(_module_so "${CMAKE_BINARY_DIR}/module/ngx_http_dwrtc_module.so")
    endif()
    set(_env "DWRTC_MODULE=${_module_so}" "DWRTC_REPO=${CMAKE_SOURCE_DIR}")
    if(NGINX_BINARY)
        list(APPEND _env "DWRTC_NGINX=${NGINX_BINARY}")
    endif()

    foreach(_pair IN LISTS A_TIMEOUTS)
        string(REPLACE "=" ";" _pair "${_pair}")
        list(GET _pair 0 _key)
        list(GET _pair 1 _secs)
        set(_timeout_${_key} ${_secs})
    endforeach()

    file(GLOB _tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.test.mjs)
    foreach(_file IN LISTS _tests)
        get_filename_component(_name "${_file}" NAME)
        string(REGEX REPLACE "\\.test\\.mjs$" "" _name "${_name}")
        if(DEFINED _timeout_${_name})
            set(_timeout ${_timeout_${_name}})
        else()
            set(_timeout ${A_DEFAULT_TIMEOUT})
        endif()
        dwrtc_nginx_test_command(_cmd ${A_PREFIX}_${_name}
            ${_node} --test --test-reporter=spec ${_file})
        add_test(NAME ${A_PREFIX}_${_name} COMMAND ${_cmd}
                 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
        set_tests_properties(${A_PREFIX}_${_name} PROPERTIES
            ENVIRONMENT "${_env}"
            LABELS ${A_LABEL}
            TIMEOUT ${_timeout})
        if(A_SERIAL)
            set_tests_properties(${A_PREFIX}_${_name} PROPERTIES RUN_SERIAL TRUE)
        endif()
    endforeach()
endfunction()
