"""Parity with the peer libraries where the math coincides (skipped where they are not installed;
CI's torchvision stage installs pytorch-grad-cam)."""
import pytest
import torch

from captum_3dcam import GlobalLocal3DCam

from _models import TwoBlock3D, seeded

pytestmark = pytest.mark.peers


def _pgc():
    return pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed")


@pytest.mark.parametrize("method, rule", [("GradCAMPlusPlus", "gradcam++"), ("GradCAM", "gradcam"),
                                          ("LayerCAM", "layercam"), ("XGradCAM", "xgradcam")])
def test_raw_layer_cams_match_pytorch_grad_cam_on_a_3d_model(method, rule):
    pgc = _pgc()
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = seeded(TwoBlock3D, inplace=False)
    with torch.no_grad():  # large gradients: pytorch-grad-cam's epsilon (1e-6) becomes negligible
        model.fc.weight.mul_(1e4)
    x = torch.randn(2, 3, 8, 16, 16)
    layer = model.conv2
    targets = [1, 3]
    with getattr(pgc, method)(model=model, target_layers=[layer]) as cam:
        cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        theirs = torch.relu(torch.as_tensor(cam.get_cam_image(x, layer, None, acts, grads, False)))
    size = tuple(acts.shape[2:])  # compare at the layer's resolution: no resampling on either side
    ours = GlobalLocal3DCam(model, [layer]).attribute(
        x, target=targets, layer_rule=rule, normalize_layers=False, output_size=size
    )[:, 0]
    assert theirs.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=2e-4, atol=1e-5 * float(theirs.abs().max()))
