"""Guards: memory pressure, process trees and groups, child processes, containment."""
