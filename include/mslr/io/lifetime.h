// The lifetime of the file layer (HDF5) under the program's control: the only part of it outside io/.
#pragma once

namespace mslr::h5 {

// start() before MPI_Init, so that HDF5 registers no clean-up of its own at MPI_Finalize or exit; stop()
// before MPI_Finalize closes the files exceptions left open, then HDF5 — unless a file was abandoned, whose
// close would flush into the same failure again.
void start();
void stop();

}  // namespace mslr::h5
