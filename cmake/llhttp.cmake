# llhttp, the HTTP/1.1 parser corio::http uses, built as a small static library `corio_llhttp`
# in strict mode (LLHTTP_STRICT_MODE=1: no lenient parsing).
#
# Where the sources come from, first match wins:
#   1. CORIO_LLHTTP_DIR: a directory holding llhttp.c, api.c, http.c and llhttp.h (any depth
#      below it, as in llhttp's release tarball: src/*.c, include/llhttp.h);
#   2. Debian's node-llhttp package (/usr/share/llhttp/*.c, /usr/share/include/llhttp/llhttp.h);
#   3. llhttp's release tarball through FetchContent, when CORIO_FETCH_LLHTTP is on and the
#      network allows.
# Sets corio_llhttp_found.

set(CORIO_LLHTTP_DIR "" CACHE PATH "Directory with llhttp's C sources (llhttp.c, api.c, http.c, llhttp.h)")
option(CORIO_FETCH_LLHTTP "Download llhttp's release when no local copy is found" ON)
set(CORIO_LLHTTP_URL
    "https://github.com/nodejs/llhttp/archive/refs/tags/release/v9.2.1.tar.gz"
    CACHE STRING "Where FetchContent downloads llhttp's release from")

set(corio_llhttp_found FALSE)

function(corio_find_llhttp_in dir)
    file(GLOB_RECURSE c LIST_DIRECTORIES false "${dir}/llhttp.c")
    file(GLOB_RECURSE h LIST_DIRECTORIES false "${dir}/llhttp.h")
    if(c AND h)
        list(GET c 0 c)
        list(GET h 0 h)
        get_filename_component(src ${c} DIRECTORY)
        get_filename_component(inc ${h} DIRECTORY)
        if(EXISTS ${src}/api.c AND EXISTS ${src}/http.c)
            set(corio_llhttp_src ${src} PARENT_SCOPE)
            set(corio_llhttp_inc ${inc} PARENT_SCOPE)
        endif()
    endif()
endfunction()

set(corio_llhttp_src "")
if(CORIO_LLHTTP_DIR)
    corio_find_llhttp_in(${CORIO_LLHTTP_DIR})
    if(NOT corio_llhttp_src)
        message(FATAL_ERROR "corio: CORIO_LLHTTP_DIR=${CORIO_LLHTTP_DIR} holds no llhttp.c, api.c, http.c and llhttp.h")
    endif()
elseif(EXISTS /usr/share/llhttp/llhttp.c AND EXISTS /usr/share/include/llhttp/llhttp.h)
    set(corio_llhttp_src /usr/share/llhttp)
    set(corio_llhttp_inc /usr/share/include/llhttp)
elseif(CORIO_FETCH_LLHTTP)
    include(FetchContent)
    FetchContent_Declare(corio_llhttp_release URL ${CORIO_LLHTTP_URL})
    FetchContent_GetProperties(corio_llhttp_release)
    if(NOT corio_llhttp_release_POPULATED)
        FetchContent_Populate(corio_llhttp_release)
    endif()
    corio_find_llhttp_in(${corio_llhttp_release_SOURCE_DIR})
endif()

if(corio_llhttp_src)
    enable_language(C)
    add_library(corio_llhttp STATIC
        ${corio_llhttp_src}/llhttp.c ${corio_llhttp_src}/api.c ${corio_llhttp_src}/http.c)
    set_target_properties(corio_llhttp PROPERTIES
        EXPORT_NAME llhttp POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
    target_compile_definitions(corio_llhttp PUBLIC LLHTTP_STRICT_MODE=1)
    # The header is installed beside corio's own, in include/corio/llhttp/.
    target_include_directories(corio_llhttp PUBLIC
        $<BUILD_INTERFACE:${corio_llhttp_inc}>
        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/corio/llhttp>)
    set(corio_llhttp_header ${corio_llhttp_inc}/llhttp.h)
    set(corio_llhttp_found TRUE)
    message(STATUS "corio: llhttp from ${corio_llhttp_src}")
else()
    message(STATUS "corio: llhttp not found (install node-llhttp or set CORIO_LLHTTP_DIR), corio::http is not built")
endif()
