from tipline.cli import main

main()
