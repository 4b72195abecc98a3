# Debian 12 packages only (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CURL REQUIRED)

if(BUILD_TESTING OR NOT DEFINED BUILD_TESTING)
    find_package(GTest REQUIRED)
endif()

# Asio/Beast users link this: Boost headers, threads, and no deprecated Asio API.
add_library(tandem_asio INTERFACE)
add_library(tandem::asio ALIAS tandem_asio)
target_link_libraries(tandem_asio INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(tandem_asio INTERFACE
    BOOST_ASIO_NO_DEPRECATED)
