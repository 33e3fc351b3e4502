# MPI for runs over several processes (`mpirun -np N ipguard zoo|experiment|extract`:
# tools/ipguard/mpi_*, docs/mpi.md). IPG_MPI: AUTO (when an MPI with C++ linkage is found),
# ON (required) or OFF. Without it the binary does not link MPI and runs as one process.
set(IPG_MPI AUTO CACHE STRING "Build MPI runs (mpirun -np N ipguard ...): AUTO (when MPI is found), ON or OFF")
set_property(CACHE IPG_MPI PROPERTY STRINGS AUTO ON OFF)
set(IPG_HAS_MPI OFF)
if(IPG_MPI STREQUAL "ON")
  find_package(MPI REQUIRED COMPONENTS CXX)
  set(IPG_HAS_MPI ON)
elseif(NOT IPG_MPI STREQUAL "OFF")
  find_package(MPI QUIET COMPONENTS CXX)
  if(MPI_CXX_FOUND)
    set(IPG_HAS_MPI ON)
  endif()
endif()
message(STATUS "ipguard: MPI runs ${IPG_HAS_MPI} (IPG_MPI=${IPG_MPI})")
