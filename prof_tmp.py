import cProfile, pstats, torch
torch.set_num_threads(1)
from bench.perf import harness_run, load_stream, resolve_profile
profile = resolve_profile("quick")
stream = load_stream("mini")
images = torch.cat([stream.train_images(t, 0) for t in range(len(stream.tasks))])[:80 * 64]
harness_run("finetune", images[:640], profile)
pr = cProfile.Profile(); pr.enable()
steps, secs, _ = harness_run("finetune", images, profile)
pr.disable()
print(steps, secs, secs/steps*1e3)
pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
