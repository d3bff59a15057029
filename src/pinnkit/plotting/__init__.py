"""Matplotlib figures from references and training histories."""
