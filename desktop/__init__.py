"""The PySide6 desktop app for field technicians and help-desk staff."""
