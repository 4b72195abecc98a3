# Precompiled headers. Parsing Boost.Asio and Beast, nlohmann/json and GoogleTest is most of a
# translation unit's compile time here (alone, each costs 2-4 s of a 5-20 s compile), and every
# build — the CI one, then the sanitizer one — paid it in each of ~200 files. They are compiled
# once per build into a profile's header, which CMake force-includes (`-include`) in the targets
# that use the profile:
#   core       the standard library and nlohmann/json          config, sync, mirror, ha, tandem
#   net        core, Boost.Asio and Beast                      lb, serve, the simulator, fakes
#   test_core  core and GoogleTest/GoogleMock                  unit tests of core targets
#   test_net   net and GoogleTest/GoogleMock                   unit tests of net targets, e2e
# A header is only used where its flags match the user's (GCC checks); -Winvalid-pch turns a
# mismatch into a warning, an error in the ci preset. TANDEM_PCH=OFF builds without: it is how
# clang-tidy sees every file (scripts/tidy.sh), so a file that forgets an include still fails.
option(TANDEM_PCH "Precompile the heavy third-party headers" ON)

set(_tandem_pch_core
    <algorithm> <chrono> <cstddef> <cstdint> <expected> <filesystem> <functional> <map> <memory>
    <optional> <set> <string> <string_view> <utility> <vector> <nlohmann/json.hpp>)
# (Not <boost/asio/ssl.hpp>: its error category calls OpenSSL from an inline function, which
# would make every user of the header link libssl.)
set(_tandem_pch_net
    <boost/asio.hpp> <boost/asio/experimental/awaitable_operators.hpp> <boost/beast/core.hpp>
    <boost/beast/http.hpp>)
set(_tandem_pch_test <gmock/gmock.h> <gtest/gtest.h>)

# tandem_pch_profile(NAME HEADERS <h...> LIBRARIES <target...>): an object library that only
# compiles NAME's header, with the flags of the project's own targets.
function(tandem_pch_profile name)
    cmake_parse_arguments(P "" "" "HEADERS;LIBRARIES" ${ARGN})
    set(anchor ${CMAKE_BINARY_DIR}/pch/${name}.cpp)
    file(CONFIGURE OUTPUT ${anchor} CONTENT "// the translation unit of the ${name} header\n")
    add_library(tandem_pch_${name} OBJECT ${anchor})
    target_link_libraries(tandem_pch_${name} PRIVATE ${P_LIBRARIES} tandem::options)
    target_precompile_headers(tandem_pch_${name} PRIVATE ${P_HEADERS})
endfunction()

# tandem_use_pch(PROFILE target...): the targets' files start from PROFILE's header.
function(tandem_use_pch profile)
    if(NOT TANDEM_PCH)
        return()
    endif()
    foreach(target IN LISTS ARGN)
        target_precompile_headers(${target} REUSE_FROM tandem_pch_${profile})
        target_compile_options(${target} PRIVATE -Winvalid-pch)
    endforeach()
endfunction()

if(TANDEM_PCH)
    tandem_pch_profile(core HEADERS ${_tandem_pch_core} LIBRARIES nlohmann_json::nlohmann_json)
    tandem_pch_profile(net HEADERS ${_tandem_pch_core} ${_tandem_pch_net}
        LIBRARIES nlohmann_json::nlohmann_json tandem::asio)
    if(BUILD_TESTING OR NOT DEFINED BUILD_TESTING)  # (as Dependencies.cmake finds GTest)
        tandem_pch_profile(test_core HEADERS ${_tandem_pch_core} ${_tandem_pch_test}
            LIBRARIES nlohmann_json::nlohmann_json GTest::gmock)
        tandem_pch_profile(test_net HEADERS ${_tandem_pch_core} ${_tandem_pch_net} ${_tandem_pch_test}
            LIBRARIES nlohmann_json::nlohmann_json tandem::asio GTest::gmock)
    endif()
endif()
