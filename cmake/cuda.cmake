# Decides whether the CUDA backend is built and sets IPG_HAS_CUDA.
# AUTO turns it on when nvcc, cuBLAS and cuDNN are all found; ON requires them; OFF
# never looks, so a machine with no CUDA toolkit at all configures cleanly.
set(IPG_HAS_CUDA OFF)
if(NOT IPG_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  find_package(CUDAToolkit QUIET)
  find_library(IPG_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  find_path(IPG_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND TARGET CUDA::cublas
     AND IPG_CUDNN_LIBRARY AND IPG_CUDNN_INCLUDE)
    set(IPG_HAS_CUDA ON)
  elseif(IPG_CUDA STREQUAL "ON")
    message(FATAL_ERROR "IPG_CUDA=ON but nvcc, cuBLAS or cuDNN was not found "
                        "(nvcc: '${CMAKE_CUDA_COMPILER}', cuDNN: '${IPG_CUDNN_LIBRARY}')")
  endif()
endif()

if(IPG_HAS_CUDA)
  # Default architecture: the visible GPU's own when there is one, else sm_90 (H100/H200).
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    execute_process(COMMAND nvidia-smi -L RESULT_VARIABLE _smi OUTPUT_VARIABLE _smi_out
                    ERROR_QUIET OUTPUT_QUIET)
    if(_smi EQUAL 0)
      set(CMAKE_CUDA_ARCHITECTURES native)
    else()
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  add_library(ipg_cudnn INTERFACE)
  target_link_libraries(ipg_cudnn INTERFACE ${IPG_CUDNN_LIBRARY})
  target_include_directories(ipg_cudnn INTERFACE ${IPG_CUDNN_INCLUDE})
  message(STATUS "ipguard: CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${IPG_CUDNN_LIBRARY}")
endif()
