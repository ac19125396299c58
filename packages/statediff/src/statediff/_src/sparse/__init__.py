"""Sparse Jacobians and Hessians: detection, colouring, compressed evaluation."""
