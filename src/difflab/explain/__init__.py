"""Explain: what guides the denoiser — PCA over time, Captum attributions, kernels, emergence.

Every tool reads real sampling trajectories through the sampler's callback and forward hooks.
"""
