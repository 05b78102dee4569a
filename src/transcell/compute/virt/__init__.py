"""Virt drivers: what a compute host agent uses to run guests and keep their disks."""
