# Debian 12 packages only (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(OpenSSL REQUIRED)

if(BUILD_TESTING OR NOT DEFINED BUILD_TESTING)
    find_package(GTest REQUIRED)
endif()

# Boost.Asio in one translation unit per binary would be nicer, but the header-only build keeps
# the targets independent; these defines keep Asio/Beast lean and consistent everywhere.
add_library(tandem_asio INTERFACE)
add_library(tandem::asio ALIAS tandem_asio)
target_link_libraries(tandem_asio INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(tandem_asio INTERFACE
    BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)
