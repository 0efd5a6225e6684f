//! Integration tests (one binary, so the heavy dependency tree is linked once).

mod bad_input;
mod boundary;
mod chunks;
mod coverage;
mod crs;
mod dp;
mod errors;
mod events;
mod fixtures;
mod fuzz;
mod hierarchy;
mod households;
mod io;
mod parts;
mod people_frame;
mod person_lists;
mod privacy;
mod registers;
mod residents;
mod sample_city;
mod sensitivity;
mod special_needs;
mod streets;
