# tandem::options: warnings and sanitizers for the project's own targets only.
add_library(tandem_options INTERFACE)
add_library(tandem::options ALIAS tandem_options)
target_compile_options(tandem_options INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough
    $<$<BOOL:${TANDEM_WARNINGS_AS_ERRORS}>:-Werror>)
if(TANDEM_SANITIZERS)
    list(JOIN TANDEM_SANITIZERS "," _tandem_san)
    target_compile_options(tandem_options INTERFACE
        -fsanitize=${_tandem_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(tandem_options INTERFACE -fsanitize=${_tandem_san})
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
    # ccache caches the users of a precompiled header (Pch.cmake) only with this sloppiness: the
    # header is rebuilt, newer than its users' inputs, and its macros are not seen by the hash.
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
        CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
        ${CCACHE_PROGRAM})
endif()
