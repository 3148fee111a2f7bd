from sb3_bierl.esac.esac import ESAC

__all__ = ["ESAC"]
