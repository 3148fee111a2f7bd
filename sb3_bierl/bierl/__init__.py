from sb3_bierl.bierl.bierl import BiERL

__all__ = ["BiERL"]
