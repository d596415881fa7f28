// Library version. CMakeLists.txt reads the project version from here.
#ifndef SPARSENORM_VERSION_H_
#define SPARSENORM_VERSION_H_

#define SPARSENORM_VERSION_MAJOR 0
#define SPARSENORM_VERSION_MINOR 1
#define SPARSENORM_VERSION_PATCH 0
#define SPARSENORM_VERSION_STRING "0.1.0"

#endif  // SPARSENORM_VERSION_H_
