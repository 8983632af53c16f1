"""Physics helpers: kinematics, detector geometry and resolution quantities."""
